"""runtime.cpu.loop_rows: when a loop's steps may run split by rows (M = 4 rows here)."""
from runtime.cpu.loop_rows import _row_local
from runtime.program import View

M, TRIPS = 4, 5


def view(offset, ld, cols, rows=M):
    return View("arena.float32", offset, rows, cols, ld, (rows, cols))


def test_column_windows_of_one_block_of_rows_are_row_local():
    gates = [(view(c, 12, 4), M, 4, M * 12, c == 8) for c in (0, 4, 8)]
    assert _row_local(gates, M, TRIPS)


def test_a_window_one_row_down_from_a_written_one_is_not():
    written = (view(0, 8, 8), M, 8, M * 8, True)
    shifted = (view(8, 8, 8), M, 8, M * 8, False)  # row r here is row r + 1 there
    assert not _row_local([written, shifted], M, TRIPS)
    a_step_on = (view(M * 8, 8, 8), M, 8, M * 8, False)  # the previous step's state
    assert _row_local([written, a_step_on], M, TRIPS)


def test_a_view_meeting_itself_one_row_on_is_not():
    assert not _row_local([(view(0, 8, 8), M, 8, 8, True), (view(0, 8, 8), M, 8, 8, False)],
                          M, TRIPS)
    assert _row_local([(view(0, 8, 8), M, 8, 40, True), (view(0, 8, 8), M, 8, 40, False)],
                      M, TRIPS)  # moving a whole block and then some: never one row on


def test_a_written_view_moving_one_row_a_step_is_not():
    assert not _row_local([(view(0, 8, 8), M, 8, 8, True)], M, TRIPS)
    assert _row_local([(view(0, 8, 8), M, 8, 0, True)], M, TRIPS)  # an accumulator


def test_views_of_other_row_strides_must_never_meet():
    a = (view(0, 8, 8), M, 8, M * 8, True)
    far = (view(1000, 16, 8), M, 8, M * 16, False)
    near = (view(40, 16, 8), M, 8, M * 16, False)
    assert _row_local([a, far], M, TRIPS)
    assert not _row_local([a, near], M, TRIPS)


def test_a_repeated_row_is_read_only():
    bias = (View("arg:b", 0, M, 8, 0, (M, 8)), M, 8, 0, False)
    assert _row_local([bias, (view(0, 8, 8), M, 8, M * 8, True)], M, TRIPS)
    assert not _row_local([(View("arg:b", 0, M, 8, 0, (M, 8)), M, 8, 0, True)], M, TRIPS)
