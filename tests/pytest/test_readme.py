"""The README's Python example runs as written and gives what its comments say."""
import pathlib
import re

import numpy as np

import glassbox as gb

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_block():
    section = README.read_text().split("## Python\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["lrp"].shape == (4, 1, 28, 28) and scope["cam"].shape == (4, 1, 28, 28)
    assert scope["rgb"].shape == (4, 28, 28, 3) and scope["rgb"].dtype == np.uint8
    assert isinstance(scope["model"], gb.Model)


FIRST_STEPS = README.parent / "examples" / "cpp" / "first_steps.cpp"


def test_readme_cpp_blocks_are_the_compiled_example():
    """Every line of the README's C++ blocks is a line of examples/cpp/first_steps.cpp, in the same
    order (the example is compiled against the installed package and run in CI), so they cannot rot."""
    section = README.read_text().split("## Use it from C++\n", 1)[1].split("\n## ", 1)[0]
    example = [line.rstrip() for line in FIRST_STEPS.read_text().splitlines()]
    blocks = re.findall(r"```cpp\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        at = 0
        for line in filter(None, (l.rstrip() for l in block.splitlines())):
            assert line in example[at:], f"README line not in {FIRST_STEPS.name} (in order): {line}"
            at = example.index(line, at) + 1
