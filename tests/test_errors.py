"""``errors.unwrap``: the user's error behind Ray's wrappers, never behind a bug."""

from __future__ import annotations

from fer_ray.errors import ConfigError, DataError, unwrap


def test_a_user_error_is_found_itself_and_behind_explicit_causes():
    err = DataError("data.root /x does not exist")
    assert unwrap(err) is err
    try:
        try:
            raise err
        except DataError as e:
            raise RuntimeError("wrapped on purpose") from e
    except RuntimeError as outer:
        assert unwrap(outer) is err


def test_a_bug_raised_while_handling_a_user_error_keeps_its_traceback():
    try:
        try:
            raise ConfigError("grid.lr is empty")
        except ConfigError:
            {}["missing"]  # a bug in the handler: implicit context only
    except KeyError as bug:
        assert bug.__context__ is not None
        assert unwrap(bug) is None  # not the user's error: the CLI re-raises it


def test_ray_wrappers_are_followed_through_their_cause():
    from ray.exceptions import RayTaskError

    err = DataError("1 of 3 images could not be read: a.png")
    wrapped = RayTaskError("crop_chunk", "traceback text", err)
    assert unwrap(wrapped) == err or isinstance(unwrap(wrapped), DataError)
