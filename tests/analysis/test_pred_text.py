import numpy as np
import pytest

from fer_ray.analysis import pred_text


def test_encode_writes_one_digit_per_item_and_decode_inverts_it():
    classes = np.array([0, 3, 1, 2, 6, 6, 9])
    text = pred_text.encode(classes)
    assert text == "0312669"
    back = pred_text.decode(text)
    assert back.dtype == np.int64 and back.tolist() == classes.tolist()


def test_classes_beyond_nine_stay_one_character_up_to_the_last_ascii_one():
    assert pred_text.encode([10, 79]) == ":\x7f"
    assert pred_text.decode(":\x7f").tolist() == [10, 79]
    assert pred_text.decode("").tolist() == []
    with pytest.raises(ValueError, match="0..79"):
        pred_text.encode([80])
