"""Tests of pfstui.pipetask_log: what pipetask logs look like and what they say."""
