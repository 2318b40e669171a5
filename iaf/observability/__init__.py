"""What operators see of a process: its log lines, its metrics and its traces."""
