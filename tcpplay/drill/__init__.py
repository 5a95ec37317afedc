"""`tcpplay drill`: run packetdrill scripts against our userspace TCP stack.

The package has two halves that meet at the AST:

* `tcpplay.drill.parser` turns a script (a plain `.pkt` file, or a conformance-example file with
  `--- script ---` sections) into the frozen node types of `tcpplay.drill.ast`. It never runs anything and
  never returns a half-parsed script: any syntax error raises `DrillSyntaxError` with file:line:column.
  Constructs the notation allows but tcpplay does not model (python blocks, TCP Fast Open, ECN marks, UDP,
  ...) become explicit `Unsupported` nodes, so the executor can report them instead of skipping them.
* The executor (written separately) walks `Script.statements` on the stack's virtual clock.
"""
