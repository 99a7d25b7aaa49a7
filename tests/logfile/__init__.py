"""Tests of pfstui.logfile: the line index, snapshots and search over a growing log file."""
