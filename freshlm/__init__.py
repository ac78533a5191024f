"""FreshLM: keep a language model's knowledge current with Airflow, Scrapy, GX and DeepSpeed.

The shared core. Sub-modules are small and import nothing heavy at package import time,
so DAG files can import from here and still parse instantly (DESIGN invariant 5).
"""

__version__ = "0.1.0"
