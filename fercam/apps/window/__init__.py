"""The FER Cam window: a local web app (control page, live preview, charts) and the OBS overlay page."""
