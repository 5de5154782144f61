"""One training run: its configuration (:mod:`.config`, declared once with :mod:`.params`),
building and training it (:mod:`.single`), and the command-line pieces and plain-text
tables the commands share (:mod:`.cliutil`, :mod:`.tables`, :mod:`.algorithms_cli`)."""
