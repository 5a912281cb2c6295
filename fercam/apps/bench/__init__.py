"""`fercam bench`: the live pipeline measured (`bench.py`) and docs/PERFORMANCE.md written from it (`perfpage.py`)."""
