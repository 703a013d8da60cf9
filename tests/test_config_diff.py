from fer_ray.config_diff import flatten


def test_flatten_dots_nested_keys_and_keeps_lists_whole():
    cfg = {"name": "a", "train": {"lr": 0.1, "phases": [1, 2]}, "search": {"space": {}}}
    assert flatten(cfg) == {"name": "a", "train.lr": 0.1, "train.phases": [1, 2]}


def test_flatten_of_a_leaf_is_the_prefix_and_keys_become_strings():
    assert flatten(3, "seed") == {"seed": 3}
    assert flatten({1: {"x": None}}) == {"1.x": None}
