"""Interoperation with the real JavaScript secret-stream, run through node."""
