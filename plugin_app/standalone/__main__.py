"""``python -m plugin_app.standalone`` is ``exportbulk-standalone``."""

from plugin_app.standalone.cli import main

main()
