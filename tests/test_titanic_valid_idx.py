"""Titanic `[data] valid_idx`: a template pins any published validation split (issue 10)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from sheetsgd.lessons import kinds
from sheetsgd.cli.commands import cli

TEMPLATE = """
[data]
dataset = "titanic"
preset = "{preset}"
valid_idx = {idx}
[model]
kind = "logistic"
[optimizer]
sgd = {{ lr = 0.1 }}
[training]
batch_size = "full"
epochs = 2
"""


def lesson_with(tmp_path, idx, preset="from-scratch"):
    path = tmp_path / "split.toml"
    path.write_text(TEMPLATE.format(preset=preset, idx=list(idx)), encoding="utf-8")
    return kinds.load(str(path)), path


def test_a_hand_picked_split_is_reproduced_exactly(tmp_path):
    idx = [890, 0, 5, 10, 444, 3, 77]  # 0-based CSV rows, any order
    lesson, _ = lesson_with(tmp_path, idx)
    data = lesson.data
    assert data.n_valid == len(idx) and data.n_train == 891 - len(idx)
    ids = data.passengers["PassengerId"].astype(int)  # PassengerId = CSV row + 1
    assert list(ids[data.n_train:]) == [i + 1 for i in sorted(idx)]  # validation rows, in file order
    assert list(ids[:data.n_train]) == [i + 1 for i in range(891) if i not in idx]
    # the engine's validation rows are exactly these passengers
    trace = kinds.kind_of(lesson).train(lesson)
    assert len(trace.validation) == 2


def test_rows_the_preset_drops_are_refused(tmp_path):
    # CSV row 5 (PassengerId 6) has no Age: the lesson3-sheet preset drops it
    result = CliRunner().invoke(cli, ["trace", str(_write(tmp_path, [5], "lesson3-sheet"))])
    assert result.exit_code == 2
    assert "valid_idx names CSV row 5, which preset lesson3-sheet does not keep" in result.output


def _write(tmp_path, idx, preset):
    path = tmp_path / "t.toml"
    path.write_text(TEMPLATE.format(preset=preset, idx=list(idx)), encoding="utf-8")
    return path


@pytest.mark.parametrize("idx,message", [([0, 0], "lists a row twice"), ([-1], "valid_idx[0] must be a whole number ≥ 0"),
                                         (["3"], "valid_idx[0] must be a whole number"), ([891], "CSV row 891")])
def test_bad_valid_idx_is_one_line(tmp_path, idx, message):
    result = CliRunner().invoke(cli, ["trace", str(_write(tmp_path, idx, "from-scratch"))])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert message in result.output, result.output


def test_valid_idx_and_valid_fraction_are_exclusive(tmp_path):
    path = _write(tmp_path, [1, 2], "from-scratch")
    path.write_text(path.read_text().replace("valid_idx", "valid_fraction = 0.2\nvalid_idx"))
    result = CliRunner().invoke(cli, ["trace", str(path)])
    assert result.exit_code == 2 and "valid_idx or valid_fraction, not both" in result.output


def test_fastai_random_splitter_seed_42(tmp_path):
    """course22 notebook 05: RandomSplitter(seed=42)(df), written out (fastai: torch.manual_seed, randperm, cut)."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    torch.manual_seed(42)
    perm = torch.randperm(891).numpy()
    valid = perm[: int(0.2 * 891)]
    lesson, _ = lesson_with(tmp_path, valid.tolist())
    ids = lesson.data.passengers["PassengerId"].astype(int)
    assert sorted(ids[lesson.data.n_train:] - 1) == sorted(valid.tolist())
    assert lesson.data.n_valid == 178
