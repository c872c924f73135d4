"""/copy code N: the Nth code block the reply shows, whole, wherever it sits."""

from __future__ import annotations

import pytest

from lollma_tui.core.chat.commands import CommandError
from lollma_tui.core.chat.copying import choose_copy, code_blocks

REPLY = """Steps:

1. Install:

   ```bash
   pip install thing
   ```

2. Run it:

````markdown
Example:
```python
print("hi")
```
````

~~~
tilde fence
~~~

Done.
"""


def test_blocks_in_lists_longer_fences_and_tildes_are_all_found_whole() -> None:
    # The old pattern found none in a list, cut the four-backtick one at its inner fence, and
    # never saw ~~~.
    assert code_blocks(REPLY) == [
        "pip install thing",
        'Example:\n```python\nprint("hi")\n```',
        "tilde fence",
    ]


def test_choose_copy_numbers_blocks_from_one_and_says_how_many_there_are() -> None:
    assert choose_copy(REPLY, "code 3") == ("tilde fence", "code block 3")
    assert choose_copy(REPLY, "") == (REPLY, "the last reply")
    with pytest.raises(CommandError, match="has 3 code blocks"):
        choose_copy(REPLY, "code 4")
    assert choose_copy(REPLY, "Code 3") == ("tilde fence", "code block 3")
    # Anything else copied the whole reply, saying nothing of the argument.
    for argument in ("2", "foo", "code 1 2"):
        with pytest.raises(CommandError, match="Usage: /copy"):
            choose_copy(REPLY, argument)
