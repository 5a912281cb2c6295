"""What users run: the command line, the tray, the window, analysis of recordings, the benchmark and the doctor."""
