/** Where dropped publishes and discarded wills go: a `$` topic no client can subscribe to. */
export const DROPPED_TOPIC = '$scopegate/dropped';
