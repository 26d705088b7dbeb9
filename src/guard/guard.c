/*
 * guard.c — sets up src/guard (see guard.h): the object access hook
 * (objects.c), the utility hook (utility.c), the planner hook (planner.c)
 * and the executor-start hook (replica.c), each chained to the hook
 * installed before it.
 *
 * State: none of its own.
 */
#include "postgres.h"

#include "guard/guard.h"
#include "guard/internal.h"

void
guard_init(void)
{
	objects_init();
	utility_init();
	planner_init();
	replica_init();
}
