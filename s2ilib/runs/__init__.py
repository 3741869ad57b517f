"""Run directories: creating and logging them, checkpoints, and loading what they trained.

    runs/NNNNN-<kind>-<desc>/
        config.json        the full resolved config: training, networks, data path, earlier run
        environment.json   python/torch versions, device, git commit, host, CPU count, resumes
        log.txt            what the run printed
        stats.jsonl        one JSON line per log interval: step, epoch, losses, grad norms, lr
        events.out.tfevents.*   TensorBoard
        samples/step_XXXXXXX.png
        checkpoints/last.pt (+ step_XXXXXXX.pt when kept)

rundir.py (directories, logs), checkpoint.py (atomic checkpoints), load.py (`load_run`:
the networks of a run in eval mode), stats.py (stats tables, sample grids, warnings).
Nothing here imports s2ilib.train: evaluation, imagine and the notebooks read runs here.
"""

from s2ilib.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from s2ilib.runs.load import TRANSLATOR_KINDS, TrainedRun, load_run, loadable_run
from s2ilib.runs.rundir import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    RunLog,
    create_run_dir,
    environment_info,
    read_config,
)
from s2ilib.runs.stats import (
    has_discriminator,
    read_metrics,
    read_recall_choice,
    read_stats,
    read_stats_by,
    sample_grid_near,
    sample_grid_paths,
    sample_grids,
    stall_report,
    stall_warnings,
)

__all__ = [
    "CONFIG_FILE",
    "TRANSLATOR_KINDS",
    "ENVIRONMENT_FILE",
    "RunLog",
    "TrainedRun",
    "create_run_dir",
    "environment_info",
    "has_discriminator",
    "latest_checkpoint",
    "load_checkpoint",
    "load_run",
    "loadable_run",
    "read_config",
    "read_metrics",
    "read_recall_choice",
    "read_stats",
    "read_stats_by",
    "sample_grid_near",
    "sample_grid_paths",
    "sample_grids",
    "save_checkpoint",
    "stall_report",
    "stall_warnings",
]
