"""fer_ray's recipes: each package declares a paper's stages and config section.

How to write one (the same for a package of your own, found through the entry-point group
``fer_ray.recipes``; see ``tests/toy_recipe`` for a complete small one):

* ``<pkg>/__init__.py`` (Ray-free: config loading and the report import it): the config
  section as a frozen dataclass (typed choices with ``typing.Literal``; ``errors(self, cfg)``
  returns what is wrong, one line each), one ``fer_ray.protocol.Stage`` per stage (name, keys
  read, artifacts read and written, ``enabled``, ``run`` and optional hooks as
  ``"module:function"`` strings), the file names it writes, and its report section; a call to
  ``fer_ray.protocol.register(...)`` registers them all.
* ``<pkg>/stage.py``: the stage's ``run(ctx)`` (orchestration only: Ray tasks, Tune);
* ``<pkg>/report.py``: its report section (``name``, ``load``, ``plots``, ``blocks``);
* the pure analysis it calls (numpy/torch, no Ray), in the package or in ``fer_ray.analysis``
  where other recipes share it.

fer_ray's own: ``core`` (prepare, grid, ensemble, analyse; their code in ``fer_ray.stages``),
``descriptors``, ``rules`` (with ``export``), ``clean``, ``newfaces``, ``aumaps``.
"""
