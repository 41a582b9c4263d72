/** Entry point of the Function app (`package.json` main): loading it registers every function. */
import './incidentWebhook';
import './alertWebhook';
import './alertStream';
import './getCase';
import './health';
import './outboxDrain';
