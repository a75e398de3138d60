"""The local cloud: what `sam deploy` brings up in AWS, on one machine, read from template.yaml.

Development only: never deployed, never imported by a function.
"""
