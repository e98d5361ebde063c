"""The NextCandle policy pack. Constructing PolicyPack starts the analyzer and blocks, so the rules
live in rules.py, where tests can import them."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import POLICIES

PolicyPack(name="nextcandle-swarm", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
