#!/usr/bin/env python3
"""Prints the functions of a binary that ran, one symbol a line: the link order for scripts/build-release.

    executed-functions.py BINARY CALLGRIND_FILE...

The profiles must come from valgrind --tool=callgrind --dump-instr=yes --compress-pos=no --compress-strings=no, so
that every line of cost starts with the absolute address of an instruction that ran. Addresses are mapped to
symbols here, from `nm` of the binary, instead of taking callgrind's function names: callgrind names a function
by one of the symbols at its address, and every symbol of it counts, since a function left out of the list stays
where the compiler put it and costs a 64 KiB window of resident code for the few bytes that run. Sorted by name,
a list written again after a change differs only where the code did.
"""
import bisect
import os
import subprocess
import sys


def function_symbols(binary):
    """(start, end, name) of every function symbol with a size, sorted by start."""
    listing = subprocess.run(["nm", "--defined-only", "-S", binary], capture_output=True, text=True, check=True)
    symbols = []
    for line in listing.stdout.splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[2] in "tTwW":
            start, size = int(fields[0], 16), int(fields[1], 16)
            if size:
                symbols.append((start, start + size, fields[3]))
    symbols.sort()
    return symbols


def executed_addresses(profile, binary_name):
    """Addresses of the binary's instructions that the profile counted (each has a cost line of its own)."""
    addresses = set()
    in_binary = False  # whether the cost lines that follow belong to the binary's code
    with open(profile, errors="replace") as lines:
        for line in lines:
            if line.startswith("ob="):
                in_binary = os.path.basename(line[3:].strip()) == binary_name
            elif in_binary and line.startswith("0x"):
                addresses.add(int(line.split(None, 1)[0], 16))
    return addresses


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: executed-functions.py BINARY CALLGRIND_FILE...")
    binary = sys.argv[1]
    symbols = function_symbols(binary)
    starts = [start for start, _, _ in symbols]
    binary_name = os.path.basename(binary)
    names = set()
    for profile in sys.argv[2:]:
        for address in executed_addresses(profile, binary_name):
            index = bisect.bisect_right(starts, address) - 1
            if index < 0:
                continue
            # Several symbols can share an address (aliases, merged functions): each one that covers it counts.
            first = starts[index]
            while index >= 0 and starts[index] == first:
                start, end, name = symbols[index]
                if address < end:
                    names.add(name)
                index -= 1
    for name in sorted(names):
        print(name)


if __name__ == "__main__":
    main()
