"""The benchmarks, as a package: run each from the repository's root as a module,
``.venv/bin/python -m benchmarks.compare`` (likewise ``.turns``, ``.load``, ``.understanding``,
``.voice``); their targets are in :mod:`benchmarks.targets`."""
