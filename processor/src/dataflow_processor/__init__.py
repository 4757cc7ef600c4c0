"""DataFlow processor: source → transformation chain → router split → sink(s), at least once.

Layering (imports only go downward): ``cli`` → ``pipeline``/``health``/``status`` →
``connectors``/``transforms`` → ``spec``/``records``/``watermark``/``paths``/``conditions``.
"""

__version__ = "0.1.0"
