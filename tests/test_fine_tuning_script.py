"""Lesson 02's fine-tuning script (``python -m tlcourse.labs.fine_tuning``), called the way the
Hugging Face examples test theirs: ``main(argv)`` on tiny data, in this process."""
from __future__ import annotations

import pytest

from tlcourse.labs import fine_tuning


def test_main_fine_tunes_on_a_tiny_folder_and_keeps_the_best_checkpoint(fake_root, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    best = fine_tuning.main(["--backbone", "efficientnet_lite0", "--epochs", "2", "--size", "32",
                             "--batch-size", "2", "--trainable-blocks", "1", "--checkpoint-dir", str(ckpt)])
    out = capsys.readouterr().out
    assert 0.0 <= best <= 1.0
    assert "1 process(es)" in out and f"best val accuracy {best:.3f}" in out
    assert list(ckpt.iterdir()), "the checkpoint directory stays empty"


def test_main_refuses_bad_arguments_before_training(fake_root):
    with pytest.raises(SystemExit):
        fine_tuning.main(["--epochs", "two"])
