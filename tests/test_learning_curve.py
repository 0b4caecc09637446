"""The learning-curve PNG: two panels for every run, a third (imagined vs real reward per step) for imagination."""

from matplotlib.image import imread

from rwmspec_runtime.plots import write_learning_curve


def _records(imagination: bool) -> list[dict]:
    rows = []
    for it in range(1, 6):
        row = {"iteration": it, "Train/mean_reward": float(it), "Train/mean_episode_length": 10.0 * it}
        if imagination:
            row["Model Based/per_step_reward_sum_imagination"] = 0.02 * it
            row["Model Based/per_step_reward_sum_real"] = 0.01 * it
        rows.append(row)
    return rows


def test_imagination_runs_get_the_imagined_vs_real_panel(tmp_path):
    plain = imread(write_learning_curve(_records(False), tmp_path / "plain.png"))
    imagined = imread(write_learning_curve(_records(True), tmp_path / "imagined.png"))
    assert plain.shape[0] == 600 and imagined.shape[0] == 900  # 3 in of height per panel at 100 dpi
    assert plain.shape[1] == imagined.shape[1] == 800


def test_iterations_without_episodes_leave_a_note_not_an_error(tmp_path):
    path = write_learning_curve([{"iteration": 1, "Train/mean_reward": None}], tmp_path / "empty.png")
    assert path.stat().st_size > 1000
