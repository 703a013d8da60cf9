"""fer_ray's recipes: each package declares a paper's stages and config section.

How to write one (the same for a package of your own, found through the entry-point group
``fer_ray.recipes``; see ``tests/toy_recipe`` for a complete small one):

* ``<pkg>/__init__.py`` (Ray-free: config loading and the report import it): the config
  section as a frozen dataclass (typed choices with ``typing.Literal``; ``errors(self, cfg)``
  returns what is wrong, one line each), one ``fer_ray.protocol.Stage`` per stage (name, keys
  read, artifacts read and written, ``enabled``, ``run`` and optional hooks as
  ``"module:function"`` strings), the file names it writes, and its report section; a call to
  ``fer_ray.protocol.register(...)`` registers them all.
* the stage's ``run(ctx)`` module (orchestration: Ray tasks, Tune), the pure analysis it calls
  (numpy/torch, no Ray) and the report section module (``load``/``plots``/``blocks``).
"""
