"""Stage plumbing that needs no Ray session."""

import torch

from fer_ray.stages import common


def test_release_accelerator_frees_the_trial_and_reports_what_is_left():
    model = torch.nn.Linear(4, 2)
    left = common.release_accelerator(model)
    assert next(model.parameters()).device.type == "cpu"
    if torch.cuda.is_available():  # on a GPU machine the reused actor must be back near zero
        assert left < 16 * 2**20
    else:
        assert left == 0.0


def test_work_rows_are_written_with_fixed_columns(tmp_path):
    common.write_work(tmp_path, [{"unit": "chunk 0", "node_id": "n1", "node_ip": "10.0.0.1",
                                  "seconds": 1.5}])  # fmt: skip
    common.write_work(tmp_path / "empty", [])
    assert (tmp_path / "work.csv").read_text().splitlines() == [
        "unit,node_id,node_ip,seconds,resumed_from_epoch",
        "chunk 0,n1,10.0.0.1,1.5,",
    ]
    header = (tmp_path / "empty" / "work.csv").read_text().strip()
    assert header == "unit,node_id,node_ip,seconds,resumed_from_epoch"
