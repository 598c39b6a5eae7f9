"""The Databricks executor: the declared graph registered as a Lakeflow Declarative Pipeline.

`pipeline.py` is the source file a Lakeflow pipeline (or open-source `spark-pipelines`) runs;
`registration.py` turns each declared dataset into `pyspark.pipelines` calls.
"""
