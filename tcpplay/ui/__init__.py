"""tcpplay's Textual UI: the app (app.py) and the panes and widgets it is built from.

The diagram widgets (ladder.py, state_diagram.py) depend only on the lab's plain data (capture records,
states), so the app embeds them and tests drive them without a running app.
"""
