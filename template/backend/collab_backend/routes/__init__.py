"""HTTP routes: parse, call one service, shape the response. Docstrings become OpenAPI text."""
