"""MLS 2.0: Qobrix CRM -> RESO Data Dictionary 2.0 lakehouse, RESO Web API and GraphQL."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

PACKAGES = ["ingestion", "pipelines", "expectations", "graphql_odata", "conf"]

setup(
    name="mls2",
    version="0.1.0",
    description=__doc__,
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_namespace_packages(include=[pattern for name in PACKAGES for pattern in (name, f"{name}.*")]),
    package_data={
        "conf": ["*.yaml", "*.json"],
        "conf.mappings": ["*.yaml"],
        "expectations.suites": ["*.yaml"],
        "pipelines.silver": ["*.sql"],
        "pipelines.ui": ["templates/*.html", "static/*.css", "static/*.js", "static/vendor/*"],
        "graphql_odata.graphql": ["assets/*"],
        "graphql_odata.certification": ["csdl/*.xsd"],
    },
    include_package_data=True,
    install_requires=[
        "requests>=2.32",
        "fastapi>=0.115",
        "uvicorn[standard]>=0.30",
        "typer>=0.12",
        "rich>=13",
        "pydantic>=2.7",
        "pydantic-settings>=2.3",
        "duckdb>=2.0,<3",
        "deltalake>=1.6,<2",
        "pyroaring>=1.2,<2",
        "pyarrow>=16",
        "sqlglot>=30,<31",
        "pyyaml>=6",
        "orjson>=3.10",
        "lark>=1.2",
        "fsspec>=2024.6",
        "odata-query>=0.10,<0.11",
        "lxml>=5",
        "pyjwt>=2.8",
        "graphene>=3.4,<4",
        "jsonschema>=4.23",
        "rapidfuzz>=3.9",
        "great-expectations>=1.24,<2",
        "jinja2>=3.1",
        "python-multipart>=0.0.20",
    ],
    extras_require={
        "databricks": ["databricks-sql-connector>=4,<5", "databricks-sdk>=0.60"],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.6",
            "hypothesis>=6.100",
            "openapi-schema-validator>=0.6",
            "httpx2>=2.16",
            "ruff>=0.6",
            "pyspark[connect]>=4.3,<5",
            "python-odata>=0.8",
            "mutmut>=3.8,<4",
            "databricks-bundles>=1.22,<2",
            "databricks-sdk>=0.60",
            "playwright>=1.65,<2",
        ],
    },
    entry_points={"console_scripts": ["mls2=conf.cli:app"]},
)
