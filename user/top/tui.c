#include <curses.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "top/top.h"
#include "util/clock.h"

/* Keys are looked at this often while waiting for the next read. */
#define TUI_TICK_MS 100
#define TUI_FILTER_MAX 64

enum { PAIR_ERRORS = 1, PAIR_SLOW, PAIR_TITLE };

struct tui {
	struct top_session *s;
	enum top_sort sort;
	char filter[TUI_FILTER_MAX];
	char editing[TUI_FILTER_MAX]; /* the filter being typed */
	bool typing;
	char *detail;		/* the service drilled into, or NULL */
	size_t detail_first;	/* its first operation row shown */
	size_t selected, first; /* in the main view's shown rows */
	char message[600];	/* the last read's failure, if any */
	struct top_table services, ops, statuses;
};

static volatile sig_atomic_t stop_signal;
/* The terminal as it was, for a crash to put back. */
static struct termios saved_termios;
static bool have_termios;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* A crash leaves the terminal as it found it, then dies as it would
 * have. Only async-signal-safe calls: the saved modes back, and the
 * sequences that leave the alternate screen, show the cursor and reset
 * the colours written as they are (endwin() may be what crashed). */
static void on_fatal(int sig)
{
	static const char reset[] = "\033[0m\033[?25h\033[?1049l\r\n";
	ssize_t n;

	if (have_termios)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	n = write(STDOUT_FILENO, reset, sizeof(reset) - 1);
	(void)n;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_stop };
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL };

	have_termios = tcgetattr(STDIN_FILENO, &saved_termios) == 0;

	/* Before initscr: ncurses leaves handlers it finds in place. No
	 * SA_RESTART, so a wait for a key returns at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], on_fatal);
}

static const char *sort_name(enum top_sort sort)
{
	static const char *const names[TOP_NSORTS] = {
		[TOP_SORT_NAME] = "name",     [TOP_SORT_RATE] = "rate",
		[TOP_SORT_ERRORS] = "errors", [TOP_SORT_P50] = "p50",
		[TOP_SORT_P95] = "p95",	      [TOP_SORT_P99] = "p99",
		[TOP_SORT_CONNS] = "conns",   [TOP_SORT_KIND] = "kind",
	};

	return sort < TOP_NSORTS ? names[sort] : "?";
}

static bool shown(const struct tui *t, const struct top_row *r)
{
	return !t->filter[0] || strstr(r->service, t->filter);
}

/* The main view's rows that pass the filter, counted. */
static size_t shown_count(const struct tui *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->services.n; i++)
		n += shown(t, &t->services.rows[i]);
	return n;
}

static const struct top_row *shown_row(const struct tui *t, size_t k)
{
	for (size_t i = 0; i < t->services.n; i++)
		if (shown(t, &t->services.rows[i]) && k-- == 0)
			return &t->services.rows[i];
	return NULL;
}

static void rebuild(struct tui *t)
{
	struct top_session *s = t->s;
	double secs = top_session_seconds(s);

	top_table_release(&t->services);
	top_table_release(&t->ops);
	top_table_release(&t->statuses);
	if (s->reads < 2)
		return;
	if (top_table_build(&t->services, &s->prev, &s->cur, secs,
			    TOP_BY_SERVICE, NULL))
		snprintf(t->message, sizeof(t->message), "out of memory");
	top_table_sort(&t->services, t->sort);
	if (!t->detail)
		return;
	if (top_table_build(&t->ops, &s->prev, &s->cur, secs, TOP_BY_OPERATION,
			    t->detail) ||
	    top_table_build(&t->statuses, &s->prev, &s->cur, secs,
			    TOP_BY_STATUS, t->detail))
		snprintf(t->message, sizeof(t->message), "out of memory");
	top_table_sort(&t->ops, t->sort);
	top_table_sort(&t->statuses, TOP_SORT_RATE);
}

static int row_colour(const struct tui *t, const struct top_row *r)
{
	if (r->requests > 0 && r->error_ratio > t->s->error_threshold)
		return COLOR_PAIR(PAIR_ERRORS) | A_BOLD;
	if (!isnan(r->p99) && r->p99 > t->s->latency_threshold)
		return COLOR_PAIR(PAIR_SLOW);
	return 0;
}

/* The figures every row ends with. */
static void print_figures(const struct top_row *r)
{
	char p[3][32];

	top_format_duration(r->p50, p[0], sizeof(p[0]));
	top_format_duration(r->p95, p[1], sizeof(p[1]));
	top_format_duration(r->p99, p[2], sizeof(p[2]));
	printw("%9.1f %6.1f %8s %8s %8s", r->rate, r->error_ratio * 100, p[0],
	       p[1], p[2]);
}

static void draw_header(const struct tui *t)
{
	const struct top_session *s = t->s;
	double secs = top_session_seconds(s);

	attron(A_BOLD);
	mvprintw(0, 0, "sonde top - %s - sonde %s - %s - every %gs", s->host,
		 s->cur.version, s->src.url, s->interval);
	attroff(A_BOLD);
	move(1, 0);
	if (secs > 0)
		printw("events %.0f/s  drops %.0f/s  ",
		       (s->cur.events - s->prev.events) / secs,
		       (s->cur.drops - s->prev.drops) / secs);
	printw("series %.0f  sort: %s", s->cur.nseries_total,
	       sort_name(t->sort));
	if (t->filter[0])
		printw("  filter: %s", t->filter);
	move(2, 0);
	if (t->typing)
		printw("filter by service: %s_", t->editing);
	else if (t->message[0])
		printw("%s", t->message);
	else if (s->reads < 2)
		printw("reading again in %gs for rates over an interval ...",
		       s->interval);
}

static void draw_services(struct tui *t, int rows)
{
	size_t n = shown_count(t), width = 7;

	for (size_t i = 0; i < t->services.n; i++)
		if (strlen(t->services.rows[i].service) > width)
			width = strlen(t->services.rows[i].service);
	if (width > 32)
		width = 32;
	if (t->selected >= n)
		t->selected = n ? n - 1 : 0;
	if (t->selected < t->first)
		t->first = t->selected;
	if (rows > 0 && t->selected >= t->first + (size_t)rows)
		t->first = t->selected - rows + 1;
	attron(A_REVERSE);
	mvprintw(3, 0, "%-*s %9s %6s %8s %8s %8s %6s  %-12s", (int)width,
		 "SERVICE", "REQ/S", "ERR%", "P50", "P95", "P99", "CONNS",
		 "KIND");
	attroff(A_REVERSE);
	for (int line = 0; line < rows; line++) {
		const struct top_row *r = shown_row(t, t->first + line);
		int attr;

		if (!r)
			break;
		attr = row_colour(t, r);
		if (t->first + line == t->selected)
			attr |= A_STANDOUT;
		attron(attr);
		mvprintw(4 + line, 0, "%-*.*s ", (int)width, (int)width,
			 r->service);
		print_figures(r);
		printw(" %6.0f  %-12s", r->conns, top_kind_name(r->kind));
		attroff(attr);
	}
}

static void draw_detail(struct tui *t, int rows)
{
	int line = 3, cols = COLS > 60 ? COLS : 60;
	int what = cols - 2 - 12 - 44;

	if (what > 60)
		what = 60;
	attron(A_BOLD);
	mvprintw(line++, 0, "%s: operations and peers (Esc: all services)",
		 t->detail);
	attroff(A_BOLD);
	attron(A_REVERSE);
	mvprintw(line++, 0, "%-12s %-*s %9s %6s %8s %8s %8s", "KIND", what,
		 "OPERATION / PEER", "REQ/S", "ERR%", "P50", "P95", "P99");
	attroff(A_REVERSE);
	if (t->detail_first >= t->ops.n)
		t->detail_first = t->ops.n ? t->ops.n - 1 : 0;
	for (size_t i = t->detail_first; i < t->ops.n && line < rows + 3; i++) {
		const struct top_row *r = &t->ops.rows[i];
		char label[256];
		int attr = row_colour(t, r);

		snprintf(label, sizeof(label), "%s%s%s", r->op,
			 r->peer[0] ? " -> " : "", r->peer);
		attron(attr);
		mvprintw(line++, 0, "%-12s %-*.*s ", top_kind_name(r->kind),
			 what, what, label);
		print_figures(r);
		attroff(attr);
	}
	line++;
	if (line >= rows + 3)
		return;
	attron(A_REVERSE);
	mvprintw(line++, 0, "%-12s %-10s %9s %7s", "KIND", "STATUS", "REQ/S",
		 "SHARE%");
	attroff(A_REVERSE);
	for (size_t i = 0; i < t->statuses.n && line < rows + 3; i++) {
		const struct top_row *r = &t->statuses.rows[i];
		double all = 0;

		for (size_t k = 0; k < t->statuses.n; k++)
			if (t->statuses.rows[k].kind == r->kind)
				all += t->statuses.rows[k].requests;
		mvprintw(line++, 0, "%-12s %-10s %9.1f %7.1f",
			 top_kind_name(r->kind), r->status[0] ? r->status : "-",
			 r->rate, all > 0 ? 100 * r->requests / all : 0.0);
	}
}

static void draw(struct tui *t)
{
	int rows = LINES - 5;

	erase();
	draw_header(t);
	if (t->detail)
		draw_detail(t, rows);
	else
		draw_services(t, rows);
	attron(A_DIM);
	mvprintw(LINES - 1, 0,
		 "P p99  R rate  E errors  N name  < > sort column  / filter  "
		 "Enter details  Esc back  q quit");
	attroff(A_DIM);
	refresh();
}

static void start_typing(struct tui *t)
{
	t->typing = true;
	snprintf(t->editing, sizeof(t->editing), "%s", t->filter);
}

/* A key while the filter is typed. */
static void type_key(struct tui *t, int ch)
{
	size_t n = strlen(t->editing);

	if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		snprintf(t->filter, sizeof(t->filter), "%s", t->editing);
		t->typing = false;
		t->selected = t->first = 0;
	} else if (ch == 27) {
		t->typing = false;
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		if (n)
			t->editing[n - 1] = '\0';
	} else if (ch >= 0x20 && ch < 0x7f && n + 1 < sizeof(t->editing)) {
		t->editing[n] = (char)ch;
		t->editing[n + 1] = '\0';
	}
}

static void open_detail(struct tui *t)
{
	const struct top_row *r = shown_row(t, t->selected);

	if (!r)
		return;
	free(t->detail);
	t->detail = strdup(r->service);
	t->detail_first = 0;
}

/* Returns false when the key asks to quit. */
static bool handle_key(struct tui *t, int ch)
{
	if (t->typing) {
		type_key(t, ch);
		return true;
	}
	switch (ch) {
	case 'q':
	case 'Q':
		return false;
	case 'P':
		t->sort = TOP_SORT_P99;
		break;
	case 'R':
		t->sort = TOP_SORT_RATE;
		break;
	case 'E':
		t->sort = TOP_SORT_ERRORS;
		break;
	case 'N':
		t->sort = TOP_SORT_NAME;
		break;
	case '<':
		t->sort = (t->sort + TOP_NSORTS - 1) % TOP_NSORTS;
		break;
	case '>':
		t->sort = (t->sort + 1) % TOP_NSORTS;
		break;
	case '/':
		start_typing(t);
		return true;
	case KEY_UP:
	case 'k':
		if (t->detail && t->detail_first)
			t->detail_first--;
		else if (!t->detail && t->selected)
			t->selected--;
		return true;
	case KEY_DOWN:
	case 'j':
		if (t->detail)
			t->detail_first++;
		else
			t->selected++;
		return true;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (!t->detail)
			open_detail(t);
		break;
	case 27:
	case KEY_LEFT:
	case KEY_BACKSPACE:
		free(t->detail);
		t->detail = NULL;
		break;
	case KEY_RESIZE:
		clear();
		return true;
	default:
		return true;
	}
	rebuild(t);
	return true;
}

int top_tui_run(struct top_session *s)
{
	struct tui t = { .s = s, .sort = TOP_SORT_RATE };
	uint64_t next_read;
	char err[512];

	/* The first read before the screen changes: a sonde that is not
	 * there gets its one line and exit code, as in --once. */
	if (top_session_read(s, err, sizeof(err))) {
		fprintf(stderr, "sonde top: %s\n", err);
		return 1;
	}
	next_read = clock_monotonic_ns() + (uint64_t)(s->interval * 1e9);
	install_handlers();
	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(PAIR_ERRORS, COLOR_RED, -1);
		init_pair(PAIR_SLOW, COLOR_YELLOW, -1);
	}
	while (!stop_signal) {
		uint64_t now = clock_monotonic_ns();
		int ch, wait_ms;

		if (now >= next_read) {
			t.message[0] = '\0';
			if (top_session_read(s, err, sizeof(err)))
				snprintf(t.message, sizeof(t.message),
					 "%s (keeping the last figures)", err);
			else
				rebuild(&t);
			next_read += (uint64_t)(s->interval * 1e9);
			if (next_read < now)
				next_read = now + (uint64_t)(s->interval * 1e9);
		}
		draw(&t);
		now = clock_monotonic_ns();
		wait_ms = next_read > now ? (int)((next_read - now) / 1000000) :
					    0;
		timeout(wait_ms < TUI_TICK_MS ? wait_ms : TUI_TICK_MS);
		ch = getch();
		if (ch != ERR && !handle_key(&t, ch))
			break;
	}
	endwin();
	free(t.detail);
	top_table_release(&t.services);
	top_table_release(&t.ops);
	top_table_release(&t.statuses);
	return 0;
}
