"""Pure-Python algorithms of GCAI: no Django imports here.

Plain dataclasses in, plain dataclasses out, so the pipelines are testable in
milliseconds and usable as a library outside the web application.
"""
