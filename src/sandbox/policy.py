"""The operator's command policy: programs a command may (allow) or may not (deny) run.

A guard rail, not the security boundary (that is the sandbox): a shell can reach a program
in ways no parser of its text can see (`eval`, a script file, `python -c`). It catches
what a model writes plainly, which is what a model nearly always does. Entries are program
names (`curl`, matched by the last path component, so `/usr/bin/curl` too) or, with a
`re:` prefix, a regular expression searched in the whole command.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# words after which the next word is again in command position
_SEPARATORS = {";", "&", "&&", "|", "||", "|&", "(", ")", "\n", "{", "}", "`", "$("}
_KEYWORDS = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "for",
    "case",
    "esac",
    "in",
    "select",
    "function",
    "time",
    "!",
    "[[",
    "]]",
}
# prefixes that run the next word as the program
_WRAPPERS = {
    "sudo",
    "doas",
    "env",
    "exec",
    "command",
    "builtin",
    "nohup",
    "nice",
    "timeout",
    "stdbuf",
    "xargs",
    "setsid",
    "busybox",
}
# always allowed with an allow list: the shell's own builtins
_BUILTINS = {
    "cd",
    "echo",
    "printf",
    "export",
    "set",
    "unset",
    "test",
    "[",
    "true",
    "false",
    "exit",
    "return",
    "read",
    "pwd",
    ":",
    "local",
    "declare",
    "shift",
    "wait",
    "trap",
    "source",
    ".",
    "alias",
    "type",
    "ulimit",
    "umask",
    "break",
    "continue",
    "let",
    "eval",
    "jobs",
    "popd",
    "pushd",
    "dirs",
    "hash",
    "getopts",
    "shopt",
}
_NAMING = {"for", "select", "case"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def check(self, command: str) -> str | None:
        """None when the command may run; otherwise why not, in words for the model."""
        if not self:
            return None
        for entry in self.deny:
            if entry.startswith("re:") and re.search(entry[3:], command):
                return f"this server's policy does not allow commands matching {entry[3:]!r}"
        programs = programs_in(command)
        denied = {e for e in self.deny if not e.startswith("re:")}
        for program in programs:
            if program in denied:
                return f"this server's policy does not allow running {program!r}"
        if self.allow:
            allowed = set(self.allow) | _BUILTINS
            for program in programs:
                if program not in allowed:
                    return (
                        f"this server's policy allows only these programs: "
                        f"{', '.join(sorted(self.allow))} (not {program!r})"
                    )
        return None


def programs_in(command: str) -> list[str]:
    """The programs a shell command line names in command position (best effort)."""
    text = _without_heredocs(command).replace("$(", " $( ").replace("`", " ` ")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()\n")
    lexer.whitespace = " \t\r"
    lexer.wordchars += "$`{}[]!:.=/-+,@%^~*?"
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: take what a plain split gives
        words = command.split()
    programs: list[str] = []
    expect = True
    wrapped = False  # after `sudo`, `timeout 5`, `env X=1`: skip their options
    for word in words:
        if word in _SEPARATORS or word == "$" or set(word) <= set(";&|()\n"):
            expect, wrapped = True, False
            continue
        if not expect:
            continue
        if word in _NAMING:  # `for NAME in ...`: no program until the next separator
            expect = False
            continue
        if word in _KEYWORDS or _ASSIGNMENT.match(word):
            continue
        if wrapped and (word.startswith("-") or word[:1].isdigit()):
            continue
        name = word.rsplit("/", 1)[-1]
        programs.append(name)
        # the word a wrapper runs is a program too
        expect = wrapped = name in _WRAPPERS
    return programs


def parse_policy(
    allow: tuple[str, ...] | list[str], deny: tuple[str, ...] | list[str]
) -> CommandPolicy:
    return CommandPolicy(tuple(a for a in allow if a), tuple(d for d in deny if d))


def _without_heredocs(command: str) -> str:
    """Drop here-document bodies: they are data, not commands."""
    lines = command.split("\n")
    out: list[str] = []
    waiting: list[str] = []
    for line in lines:
        if waiting:
            if line.strip() == waiting[0]:
                waiting.pop(0)
            continue
        out.append(line)
        waiting.extend(m.group(2) for m in _HEREDOC.finditer(line))
    return "\n".join(out)
