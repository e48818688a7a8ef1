"""The fuzz suite (issue 15): generated hostile inputs at every door, in-process here and
over the network in bench/fuzz.py."""
