"""Automation 2: paying out claims (rules only so far; the package registers no functions yet)."""
