"""fer_ray: a distributed hyperparameter and ensemble runner for facial-expression recognition
on Ray Tune (``fer-ray --help``)."""

__version__ = "0.1.0"
