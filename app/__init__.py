"""西吉县实施方案数据服务 / Plan API."""

__version__ = "0.1.0"
