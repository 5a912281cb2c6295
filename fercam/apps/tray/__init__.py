"""The tray icon and its menu (`tray.py`), and which tray backend this desktop gives (`check.py`)."""
