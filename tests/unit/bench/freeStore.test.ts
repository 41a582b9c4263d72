/**
 * The bench's free store (storing costs nothing) must keep the Store contract, or the
 * "storing free" row would measure a pipeline that took other paths than it takes on SQLite.
 */
import { createFreeStore } from '../../../bench/freeStore';
import { describeStoreContract } from '../../contract/store.contract';

describeStoreContract('bench free store', async () => createFreeStore());
