"""Tests of pfstui.queue: the state document and its store, the rules, the typed contract, the supervisor."""
