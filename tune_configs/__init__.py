"""The shipped configs, installed as the package ``fer_ray.configs`` (setup.py maps it here):
``fer-ray tune -c NAME`` finds ``NAME.yaml`` among them."""
