"""Calibration plans: the YAML file an operator writes, checked before anything runs.

The modules, lowest first: ``issues`` (how a problem is reported: place, problem, fix), ``fields`` (the
syntax of each value), ``model`` (the pydantic models and the checks across stages), ``variables`` (the
environment a plan is read in, and its ``$VAR``), ``loader`` (a file read with the line of every value),
``writer`` (dump, atomic write, fingerprint), ``templates`` (the registered templates and ``plan new``),
``edit`` (a template stage appended to the operator's file as text), ``stage_edit`` (a stage's options
changed in that file, in place) and ``argv`` (each stage's command).
"""
