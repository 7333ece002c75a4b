"""Settings from the environment, and knob validation."""
from __future__ import annotations

import pytest

from tlcourse import config, errors, widgets


def test_profile_and_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCOURSE_PROFILE", "QUICK")
    assert config.profile() == "quick" and config.by_profile(1, 2) == 1
    monkeypatch.setenv("TLCOURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick"):
        config.profile()
    monkeypatch.delenv("TLCOURSE_PROFILE")
    assert config.profile() == "full"
    monkeypatch.setenv("TLCOURSE_DATA", str(tmp_path / "d"))
    assert config.data_root() == tmp_path / "d"  # absolute, symlinks kept (tlcourse.infra.cache resolves them)
    assert "profile=full" in config.summary()


@pytest.mark.parametrize("value", [0, 51, -1.5, float("nan"), "3", None, True, 2.5])
def test_out_of_range_or_wrong_type_values_are_refused(value):
    with pytest.raises(errors.InvalidSettingError, match="epochs"):
        errors.check_range("epochs", value, 1, 50, kind=int)


def test_panel_shows_course_errors_instead_of_raising():
    def action(epochs):
        errors.check_range("epochs", epochs, 1, 5, kind=int)
        return "trained"

    panel = widgets.control_panel({"epochs": widgets.int_slider("epochs", 3, 1, 10)}, action, display=False)
    assert panel.run() == "trained"
    panel.controls["epochs"].value = 9
    assert panel.run() is None  # the message goes to the panel's output, the kernel lives on


def test_live_preview_is_tagged_for_the_browser_test():
    box = widgets.live({"n": widgets.int_slider("n", 2, 1, 5)}, lambda n: None, display=False)
    assert widgets.TEST_SLIDER_CLASS in box.children[0]._dom_classes
    assert widgets.TEST_OUTPUT_CLASS in box.children[-1]._dom_classes
