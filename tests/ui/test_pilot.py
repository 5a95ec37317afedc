"""Keys in, lab state out: each test presses what a user would and checks the lab (not the pixels).

The lab runs on a virtual clock, so "time passes" only where a test steps (n) or skips (t); the app's
real-time timer is off. Modal dialogs are checked for both halves of their contract: a valid form changes
the lab, an invalid one shows an inline error and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stack import ConnectionSnapshot
from tcpplay.capture import DROPPED
from tcpplay.clock import ScaledClock
from tcpplay.lab import Lab, LabError, LabEvent
from tcpplay.ui.app import TcpPlayApp
from tcpplay.ui.config import load_config
from tcpplay.ui.detail import HexView, PacketDetail
from tcpplay.ui.help import HelpScreen
from tcpplay.ui.logmodel import PACKET
from tcpplay.ui.modals import DropModal, FormModal, SendModal, SettingsModal
from tcpplay.ui.packet_log import PacketLog

from .conftest import SIZE, established, new_lab, still_app


def state(lab: Lab, host: str) -> str:
    return str(lab.state(host))


def snapshot(lab: Lab, host: str) -> ConnectionSnapshot:
    snap = lab.snapshot(host)
    assert isinstance(snap, ConnectionSnapshot)
    return snap


async def step_until(pilot: Any, app: TcpPlayApp, done: Any, limit: int = 20) -> None:
    for _ in range(limit):
        if done():
            return
        await pilot.press("n")
    assert done()


async def test_listen_connect_and_step_to_established() -> None:
    lab = new_lab()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s", "l", "c", "o")
        assert state(lab, "server") == "LISTEN"
        assert state(lab, "client") == "SYN_SENT"
        await step_until(pilot, app, lambda: state(lab, "client") == "ESTABLISHED")
        await step_until(pilot, app, lambda: state(lab, "server") == "ESTABLISHED")
        await pilot.pause()
        assert app.query_one("#panel-0 .badge").has_class("state-established")
        flags = [row[2] for row in app.model.rows if row[0] == PACKET]
        assert flags[:3] == [0x02, 0x12, 0x10]  # SYN, SYN-ACK, ACK


async def test_send_modal_puts_bytes_in_the_capture() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w")
        assert isinstance(app.screen, SendModal)
        await pilot.press(*"hello", "enter")
        assert not isinstance(app.screen, FormModal)
        payloads = [r.segment.payload for r in lab.capture if r.segment is not None]
        assert b"hello" in payloads


async def test_send_n_generated_bytes_is_written_as_the_buffer_drains() -> None:
    lab = established()
    app = still_app(lab)
    total = 1_000_000  # far more than a send buffer takes at once
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w", "tab", *str(total), "enter")
        await pilot.pause()
        assert app._send_queue.get("client")  # the rest waits for the buffer to drain
        for _ in range(2000):
            snap = lab.snapshot("client")
            if not app._send_queue.get("client") and snap is not None and not snap.send_buffered:
                break
            lab.advance(0.01)
            lab.recv("server", 1 << 20)
            app.tick()  # the client's program writes more as space frees up
        snap = snapshot(lab, "client")
        assert (snap.snd_nxt - snap.iss - 1) & 0xFFFFFFFF == total


async def test_drop_next_drops_the_next_segment() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        assert isinstance(app.screen, DropModal)
        await pilot.press("enter")  # either host, any kind, 1
        before = lab.capture.total
        await pilot.press("w", *"ping", "enter")
        record = next(r for r in lab.capture if r.number == before + 1)
        assert record.fate == DROPPED
        log = app.query_one(PacketLog)
        assert any(row[0] == PACKET and row[1].fate == DROPPED for row in app.model.rows)
        assert log.model is app.model


async def test_invalid_modal_input_shows_an_error_and_changes_nothing() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d", "x", "y", "enter")
        modal = app.screen
        assert isinstance(modal, DropModal)
        assert "not a whole number" in modal.error_text
        assert lab.link.drop_rules == []
        await pilot.press("escape")
        await pilot.press("S")
        assert isinstance(app.screen, SettingsModal)
        await pilot.press(*"tcp_fin_timeoutt", "tab", *"30", "enter")
        settings = app.screen
        assert isinstance(settings, SettingsModal)
        assert "unknown setting" in settings.error_text
        await pilot.press("escape")
        assert lab.hosts["client"].settings.tcp_fin_timeout == 60


async def test_settings_modal_applies_a_valid_setting() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("S", *"tcp_fin_timeout", "tab", *"30", "enter")
        assert not isinstance(app.screen, FormModal)
        assert lab.hosts["client"].settings.tcp_fin_timeout == 30


async def test_keepalive_and_linger_modals_set_socket_options() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("K")
        await pilot.click("#on")
        for field, value in (("#idle", "10"), ("#intvl", "5"), ("#cnt", "3")):
            app.screen.query_one(field).value = value  # type: ignore[attr-defined]
        app.screen.query_one("#idle").focus()
        await pilot.press("enter")
        snap = snapshot(lab, "client")
        assert snap.keepalive and "keepalive" in snap.timers
        await pilot.press("L")
        await pilot.click("#on")
        app.screen.query_one("#secs").focus()
        await pilot.press("enter")
        await pilot.press("x")  # close with SO_LINGER {1, 0}: a RST
        flags = [r.segment.flags for r in lab.capture if r.segment is not None]
        assert flags[-1] & 0x04


async def test_abort_crash_reboot_and_partition() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert lab.link.partitioned
        await pilot.press("p")
        assert not lab.link.partitioned
        await pilot.press("X")
        assert state(lab, "client") == "CLOSED"
        await pilot.press("s", "C")
        assert "server" in lab.down
        await pilot.pause()
        assert str(app.query_one("#panel-1 .badge").render()) == "DOWN"
        await pilot.press("R")
        assert "server" not in lab.down
        assert state(lab, "server") == "CLOSED"


async def test_theme_switch_is_remembered(private_config: Path) -> None:
    app = TcpPlayApp(new_lab(), tick=None, still=True)
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "dark"
        assert set(app.available_themes) == {"dark", "light", "high-contrast"}  # the palette offers ours
        await pilot.press("T")
        await pilot.pause()
        assert app.theme == "light"
    assert load_config()["theme"] == "light"
    again = TcpPlayApp(new_lab(), tick=None, still=True)
    async with again.run_test(size=SIZE):
        assert again.theme == "light"


def test_a_theme_given_on_the_command_line_is_remembered_in_any_case(private_config: Path) -> None:
    app = TcpPlayApp(new_lab(), tick=None, still=True, theme="High-Contrast")
    assert app.theme == "high-contrast"
    assert load_config()["theme"] == "high-contrast"
    assert TcpPlayApp(new_lab(), tick=None, still=True).theme == "high-contrast"


def test_an_unknown_theme_lists_only_the_themes_tcpplay_offers(private_config: Path) -> None:
    with pytest.raises(LabError) as exc:
        TcpPlayApp(new_lab(), tick=None, still=True, theme="dracula")
    assert str(exc.value) == "unknown theme 'dracula'; the themes are: dark, light, high-contrast"
    assert "theme" not in load_config()


async def test_pause_step_and_speed_on_a_scaled_clock() -> None:
    wall = [100.0]
    clock = ScaledClock(1.0, wall=lambda: wall[0])
    lab = Lab(seed=1, clock=clock)
    lab.listen("server")
    lab.connect("client")
    app = TcpPlayApp(lab, tick=None, still=True, remember_theme=False)
    async with app.run_test(size=SIZE) as pilot:
        wall[0] += 0.015  # 15 ms of real time at 1x: the SYN (10 ms) has arrived
        app.tick()
        assert lab.count_in_state("server", "SYN_RCVD") == 1
        await pilot.press("space")
        assert clock.paused
        wall[0] += 10.0
        app.tick()
        assert lab.now == 15_000  # paused: nothing moves
        await pilot.press("n")
        assert lab.now == 20_000 and state(lab, "client") == "ESTABLISHED"
        await pilot.press("plus", "plus")
        assert clock.speed == 5.0
        await pilot.press("minus")
        assert clock.speed == 2.0
        await pilot.press("space")
        assert not clock.paused
        wall[0] += 0.25
        app.tick()
        assert lab.now == 520_000  # 0.25 s at 2x after the step to 20 ms


async def test_skip_to_next_timer_reaches_time_wait_expiry() -> None:
    lab = established()
    lab.close("client")
    lab.advance(0.1)
    lab.close("server")
    lab.advance(0.1)
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        assert lab.count_in_state("client", "TIME_WAIT") == 1
        await pilot.press("t")
        assert lab.count_in_state("client", "TIME_WAIT") == 0
        assert lab.now >= 60_000_000


async def test_log_selection_drives_detail_and_ladder() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # the ladder is fed while its tab is open (or in one batch when it opens)
        app.select_packet(2)
        await pilot.pause()
        detail = app.query_one(PacketDetail)
        assert detail.record is not None and detail.record.number == 2
        await pilot.pause()
        hexview = app.query_one(HexView)
        assert hexview.span == (33, 1)  # TCP flags byte (20 + 13): 0x12 = SYN+ACK
        assert hexview.data[33] == 0x12
        ladder = app._ladder()
        if ladder is not None:
            assert ladder.selected == 2
            ladder.post_message(type(ladder).Selected(3, ladder))
            await pilot.pause()
            row = app.query_one(PacketLog).selected_row()
            assert row is not None and row[1].number == 3


async def test_filter_and_absolute_numbers() -> None:
    lab = established()
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f", *"S", "enter")
        assert len(app.model) == 2  # SYN and SYN-ACK
        await pilot.press("m")
        assert app.absolute
        log = app.query_one(PacketLog)
        log.select_position(0)
        await pilot.pause()
        iss = lab.snapshot("client").iss  # type: ignore[union-attr]
        assert str(iss) in log.render_line(0).text
        await pilot.press("f", "backspace", "enter")
        assert len(app.model) == len(app.model.rows)


async def test_help_screen_and_palette_list_every_control() -> None:
    app = still_app(new_lab())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        titles = {cmd.title for cmd in app.get_system_commands(app.screen)}
        for title in ("Send data…", "Drop next segment…", "SYN flood…", "Export pcap…", "Keepalive…"):
            assert title in titles


async def test_syn_flood_modal_and_connection_table() -> None:
    lab = new_lab()
    lab.listen("server")
    app = still_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("F", "enter")
        assert lab.count_in_state("server", "SYN_RCVD") == 100
        await pilot.press("s", "right_square_bracket", "right_square_bracket")
        await pilot.pause()
        panel = app.query_one("#panel-1")
        assert panel.view.selected.state.name == "SYN_RCVD"  # type: ignore[attr-defined]
        assert app.query_one("#panel-1 .table").display


async def test_export_pcap_modal_and_pcap_on_exit(tmp_path: Path) -> None:
    lab = established()
    out = tmp_path / "exit.pcap"
    app = still_app(lab, pcap_on_exit=str(out))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("E")
        app.screen.query_one("#path").value = str(tmp_path / "a.pcap")  # type: ignore[attr-defined]
        await pilot.press("enter")
        assert (tmp_path / "a.pcap").stat().st_size > 24
        await pilot.press("q")
    assert out.exists() and app.pcap_saved is not None


async def test_small_terminal_keeps_a_usable_log() -> None:
    app = still_app(established())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        log = app.query_one(PacketLog)
        assert app.screen.has_class("-compact")
        assert log.size.height >= 4


def test_log_never_outlives_the_capture_ring() -> None:
    """Rows hold their CaptureRecord; once the ring drops a segment the log must drop its row too."""
    from tcpplay.clock import VirtualClock
    from tcpplay.ui.logmodel import LogModel

    lab = Lab(seed=1, clock=VirtualClock(), capture_size=200)
    lab.listen("server")
    lab.connect("client")
    lab.run_until_state("client", "ESTABLISHED")
    model = LogModel()

    def feed(event: LabEvent) -> None:
        model.add(event)

    lab.subscribe(feed)
    for _ in range(40):
        lab.send("client", b"z" * 20_000)
        lab.advance(0.05)
        lab.recv("server", 1 << 20)
    assert lab.capture.total > 400  # the ring (200) has wrapped
    model.drop_packets_before(lab.capture.records[0].number)
    oldest = model.oldest_packet()
    assert oldest == lab.capture.records[0].number
    assert model.position_of_packet(oldest) is not None
    assert model.position_of_packet(oldest - 1) is None


class FakePlayer:
    """The demo player interface (tcpplay.scenarios.player.Player): steps that act on a fresh seeded lab,
    goto(i) rebuilding the lab and replaying steps < i, then calling on_lab_replaced."""

    def __init__(self) -> None:
        self.steps = [_Step("Listen", "The server listens."), _Step("Connect", "The client connects.")]
        self.index = 0
        self.on_lab_replaced: Any = None
        self.lab = new_lab()

    def _run(self, index: int) -> None:
        if index == 0:
            self.lab.listen("server")
        else:
            self.lab.connect("client")
            self.lab.run_until_state("client", "ESTABLISHED", timeout=5)

    def next(self) -> bool:
        if self.index >= len(self.steps):
            return False
        self._run(self.index)
        self.index += 1
        return True

    def goto(self, index: int) -> None:
        self.lab = new_lab()
        self.index = 0
        while self.index < index:
            self.next()
        if self.on_lab_replaced is not None:
            self.on_lab_replaced(self.lab)


class _Step:
    def __init__(self, title: str, narration: str) -> None:
        self.title = title
        self.narration = narration


async def test_demo_player_next_back_and_narration() -> None:
    player = FakePlayer()
    app = TcpPlayApp(player=player, tick=None, still=True, remember_theme=False)
    async with app.run_test(size=SIZE) as pilot:
        assert "space/enter" in app.narration
        await pilot.press("space")  # next step, not pause, in a demo
        assert player.index == 1 and state(app.lab, "server") == "LISTEN"
        assert "The server listens." in app.narration
        await pilot.press("enter")
        assert state(app.lab, "client") == "ESTABLISHED"
        packets = len([r for r in app.model.rows if r[0] == PACKET])
        assert packets >= 3
        old_lab = app.lab
        await pilot.press("backspace")  # back to after step 1: a new lab, replayed
        assert app.lab is not old_lab and app.lab is player.lab
        assert state(app.lab, "client") == "CLOSED" and state(app.lab, "server") == "LISTEN"
        assert not any(r[0] == PACKET for r in app.model.rows)
        assert "Step 1/2" in app.narration
        await pilot.press("a")  # autoplay runs the next step at once, then stops at the end
        assert player.index == 2


async def test_narrate_shows_and_hides_the_bar() -> None:
    app = still_app(new_lab())
    async with app.run_test(size=SIZE) as pilot:
        bar = app.query_one("#narration")
        assert not bar.display
        app.narrate("A SYN is on its way.")
        await pilot.pause()
        assert bar.display
        app.narrate("")
        assert not bar.display


async def test_real_demo_player_from_the_catalog() -> None:
    """The scenario helper's Player drives the app: every step runs, going back replaces the lab."""
    scenarios = pytest.importorskip("tcpplay.scenarios")
    from tcpplay.scenarios.player import Player

    paths = scenarios.catalog_paths()
    if not paths:
        pytest.skip("no scenario in the catalog")
    player = Player(str(paths[0]))
    app = TcpPlayApp(player=player, tick=None, still=True, remember_theme=False)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(len(player.steps)):
            await pilot.press("space")
        assert player.done and player.passed
        assert f"Step {len(player.steps)}/{len(player.steps)}" in app.narration
        first_lab = app.lab
        await pilot.press("left")
        assert app.lab is player.lab and app.lab is not first_lab
        assert player.index == len(player.steps) - 1


def test_panel_describes_a_kernel_peer_snapshot() -> None:
    """A kernel peer's KernelSnapshot (inet_diag) has no ISS/IRS; the panel shows what it has."""
    kernel = pytest.importorskip("tcpplay.links.kernel")
    from rich.text import Text

    from stack import State
    from tcpplay.ui.endpoint import EndpointPanel, PanelView

    snap = kernel.KernelSnapshot(
        local=("198.18.0.2", 8080), remote=("198.18.0.1", 40000), state=State.ESTABLISHED, mss=1448
    )
    panel = EndpointPanel("server")
    view = PanelView("server", "198.18.0.2", False, False, 0, [snap], snap, State.ESTABLISHED, None, None)
    text = panel._fmt_details(view)
    assert isinstance(text, Text) and "Linux socket" in text.plain and "MSS 1448" in text.plain
