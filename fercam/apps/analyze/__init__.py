"""`fercam analyze`: recordings in, per-input folders out (`analyze.py`), locally or on Ray (`cluster.py`)."""
