/*
 * storage_pool.c: a small pool of threads that runs one parallel-for at
 * a time: task i of n for every i, spread over the caller and the
 * workers. The indexer uses it to insert a batch of WAL records' vectors
 * into the graphs from every core (hnsw_insert is safe from many threads).
 *
 * Threading: one caller at a time (the indexer thread); storage_pool_run
 * returns once every task has run, so the tasks may use the caller's
 * memory. Workers sleep on a condition variable between runs.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "storage_impl.h"

struct storage_pool {
	unsigned n;                 /* workers (threads - 1) */
	pthread_t *th;              /* the workers */
	pthread_mutex_t mu;         /* guards the fields below */
	pthread_cond_t go_cv;       /* gen moved, or stopping */
	pthread_cond_t done_cv;     /* running reached 0 */
	uint64_t gen;               /* runs started */
	unsigned running;           /* workers still in this run */
	int stopping;
	/* The run in progress (written before gen moves, under mu). */
	storage_pool_fn fn;
	void *arg;
	size_t ntasks;
	_Atomic size_t next;        /* the next task to take */
};

/* A worker's start argument. */
struct worker_arg {
	storage_pool *p;
	unsigned id;                /* 1..n; the caller is 0 */
};

/* Take tasks until none are left. */
static void
drain(storage_pool *p, unsigned id)
{
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->ntasks)
		p->fn(p->arg, i, id);
}

/* A worker: wait for a run, drain it, report, again. */
static void *
worker_main(void *a)
{
	struct worker_arg *wa = a;
	storage_pool *p = wa->p;
	unsigned id = wa->id;
	uint64_t seen = 0;

	vdb_free(wa);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->gen == seen && !p->stopping)
			pthread_cond_wait(&p->go_cv, &p->mu);
		if (p->stopping)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		drain(p, id);
		pthread_mutex_lock(&p->mu);
		if (--p->running == 0)
			pthread_cond_signal(&p->done_cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Stop and join the first n workers. */
static void
stop_workers(storage_pool *p, unsigned n)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->go_cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->th[i], NULL);
}

int
storage_pool_new(unsigned threads, storage_pool **out)
{
	storage_pool *p = vdb_calloc(1, sizeof(*p));
	unsigned i;

	if (p == NULL || (threads > 1 && (p->th = vdb_calloc(threads - 1,
	    sizeof(pthread_t))) == NULL)) {
		vdb_free(p);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go_cv, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	for (i = 0; i + 1 < threads; i++) {
		struct worker_arg *wa = vdb_malloc(sizeof(*wa));
		if (wa == NULL)
			break;
		*wa = (struct worker_arg) { p, i + 1 };
		if (pthread_create(&p->th[i], NULL, worker_main, wa) != 0) {
			vdb_free(wa);
			break;
		}
	}
	if (i + 1 < threads && threads > 1) {
		stop_workers(p, i);
		storage_pool_free(p);
		return vdb_err(VECDB_ENOMEM, "cannot start %u index threads",
		    threads);
	}
	p->n = threads > 1 ? threads - 1 : 0;
	*out = p;
	return VECDB_OK;
}

unsigned
storage_pool_threads(const storage_pool *p)
{
	return p->n + 1;
}

void
storage_pool_run(storage_pool *p, size_t n, storage_pool_fn fn, void *arg)
{
	if (n == 0)
		return;
	if (p->n == 0 || n == 1) {
		for (size_t i = 0; i < n; i++)
			fn(arg, i, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->ntasks = n;
	atomic_store(&p->next, 0);
	p->running = p->n;
	p->gen++;
	pthread_cond_broadcast(&p->go_cv);
	pthread_mutex_unlock(&p->mu);
	drain(p, 0);
	pthread_mutex_lock(&p->mu);
	while (p->running > 0)
		pthread_cond_wait(&p->done_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void
storage_pool_free(storage_pool *p)
{
	if (p == NULL)
		return;
	if (!p->stopping)
		stop_workers(p, p->n);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->go_cv);
	pthread_cond_destroy(&p->done_cv);
	vdb_free(p->th);
	vdb_free(p);
}
