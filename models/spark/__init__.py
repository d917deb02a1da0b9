"""Waymark's data-heavy steps on Apache Spark, from the same SQL that runs on DuckDB.

Nothing here is imported unless ``--engine spark`` is asked for: the default install has neither
Java nor PySpark (``pip install 'waymark[spark]'`` adds PySpark; Spark itself needs Java 17+).
The feature and validation queries are written once, in DuckDB's dialect, and translated for
Spark SQL by SQLGlot (``models.spark.sql``); equality of the two engines' results is tested.
"""
