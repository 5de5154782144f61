"""One training run: its configuration (:mod:`.config`, declared once with :mod:`.params`),
building and training it (:mod:`.single`), and the command-line pieces and plain-text
tables the commands share (:mod:`.cliutil`, :mod:`.tables`, :mod:`.algorithms_cli`).

``lchannel.run`` was the one-run module before the re-layout (issue 28); its names are
re-exported here so ``from lchannel.run import train_config`` keeps working."""

from .single import (CHECK_FOLDER, RESULT_HEADER, RESUME_EXCLUDE, RUN_FILES, RunFolderError, RunResult,
                     build_trainer, divergence_notes, fit_options, load_data, open_run_folder, pct, result_row,
                     run_id, summarize, train_config, write_metrics)

__all__ = ["CHECK_FOLDER", "RESULT_HEADER", "RESUME_EXCLUDE", "RUN_FILES", "RunFolderError", "RunResult",
           "build_trainer", "divergence_notes", "fit_options", "load_data", "open_run_folder", "pct", "result_row",
           "run_id", "summarize", "train_config", "write_metrics"]
