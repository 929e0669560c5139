"""Payloads shared by the API, workflows and activities.

This package imports only pydantic and the standard library so workflow code can import it
through Temporal's sandbox.
"""
